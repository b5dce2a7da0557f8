"""The page renderer is a pure function of its title, facts line and sections."""

from dmlbench.records.html_render import IMAGE_CHECK, render_page


def test_render_page_puts_title_facts_and_non_empty_sections_in_order():
    page = render_page("a <b>", ["written now", "data set X"], ["<h2>one</h2>", "", "<h2>two</h2>"])
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</body></html>")
    assert "<title>a &lt;b&gt;</title>" in page and "<h1>a &lt;b&gt;</h1>" in page  # escaped
    assert "<p class='meta'>written now; data set X</p>" in page
    assert page.index("<h2>one</h2>") < page.index("<h2>two</h2>") < page.index(IMAGE_CHECK)
    assert "\n\n" not in page  # the empty section left no gap
    assert render_page("a <b>", ["written now", "data set X"], ["<h2>one</h2>", "", "<h2>two</h2>"]) == page
