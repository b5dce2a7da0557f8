"""Common ground of the data sets read from their official on-disk format.

Each such data set lives in its own folder (``CUB_200_2011``, ``Stanford_Online_Products``, ...)
inside the user's ``--dataset_root``. ``root`` may be that parent folder or the data set's folder
itself. A "marker" file proves the folder is the right one (``images.txt`` for CUB, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from dmlbench.data.base import RetrievalDataset
from dmlbench.data.download import RemoteFile, download_dataset
from dmlbench.data.roots import image_folder_hint, root_hint
from dmlbench.errors import DatasetError


class OfficialFormatDataset(RetrievalDataset):
    """A data set with a known folder name, marker file and (optional) download recipe.

    Subclasses set the class attributes and implement :meth:`_load` (parse the annotation
    files under ``self.folder`` and call ``self._set_samples``). The constructor never opens an
    image.
    """

    registry_name: ClassVar[str]
    #: Accepted names of the data set's folder inside ``root``; the first is where downloads go.
    folder_names: ClassVar[tuple[str, ...]]
    #: Files (relative to the data set's folder) of which one must exist; the first is canonical.
    markers: ClassVar[tuple[str, ...]]
    remote_files: ClassVar[tuple[RemoteFile, ...]] = ()
    #: Instructions when the data set cannot be fetched automatically; ``{root}`` is filled in.
    manual_download: ClassVar[str | None] = None
    #: Published size per official split: ``{split: (images, classes)}``.
    reference_sizes: ClassVar[dict[str, tuple[int, int]]] = {}

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(transform)
        root = Path(root).expanduser()
        if download:
            download_dataset(type(self), root)
        folder = type(self).find_folder(root)
        if folder is None:
            raise DatasetError(type(self).missing_message(root))
        self.root = root
        self.folder = folder
        self._load()

    def _load(self) -> None:
        raise NotImplementedError

    # ---- locating the tree ------------------------------------------------------------------

    @classmethod
    def find_folder(cls, root: str | Path) -> Path | None:
        """The data set's folder under ``root`` (or ``root`` itself), None when absent."""
        root = Path(root).expanduser()
        for candidate in [root / name for name in cls.folder_names] + [root]:
            if any((candidate / marker).is_file() for marker in cls.markers):
                return candidate
        return None

    @classmethod
    def expected_marker(cls, root: str | Path) -> Path:
        """Where the canonical marker file is expected (for messages)."""
        root = Path(root).expanduser()
        folder = root if root.name in cls.folder_names else root / cls.folder_names[0]
        return folder / cls.markers[0]

    @classmethod
    def missing_message(cls, root: str | Path) -> str:
        where = cls.expected_marker(root)
        if cls.manual_download:
            how = cls.manual_download.format(root=Path(root).expanduser())
        else:
            how = f"run `python -m dmlbench.data download {cls.registry_name} --root {root}`{root_hint(root)}"
        hint = image_folder_hint(cls.registry_name, root)
        return f"{cls.registry_name}: {where} not found; " + (hint if hint else how)

    # ---- reading annotation files -----------------------------------------------------------

    def _require(self, *relative_alternatives: str) -> Path:
        """The first existing file among the alternatives, else a :class:`DatasetError`."""
        for relative in relative_alternatives:
            path = self.folder / relative
            if path.is_file():
                return path
        raise DatasetError(
            f"{self.registry_name}: {self.folder / relative_alternatives[0]} not found; "
            f"the data set folder {self.folder} is incomplete, download it again"
        )

    def _read_rows(
        self, path: Path, columns: int, skip: int = 0, header: str | None = None
    ) -> list[list[str]]:
        """Whitespace-separated rows with at least ``columns`` fields (blank lines skipped).

        The first ``skip`` lines are dropped, then a line starting with ``header`` if any.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(f"{self.registry_name}: {path} is not a text file ({error})") from error
        rows = []
        lines = text.splitlines()
        if header is not None and len(lines) > skip and lines[skip].lstrip().startswith(header):
            skip += 1
        for number, line in enumerate(lines[skip:], start=skip + 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < columns:
                raise DatasetError(
                    f"{self.registry_name}: {path} line {number} has {len(fields)} fields, "
                    f"expected {columns}: {line.strip()!r}"
                )
            rows.append(fields)
        return rows

    def _join(self, relative_paths: Iterable[str], base: Path | None = None) -> list[str]:
        """``base/relative`` for each path (string joins: fast for 100k+ samples)."""
        prefix = str(self.folder if base is None else base)
        return [os.path.join(prefix, relative) for relative in relative_paths]

    def _to_ints(self, values: Sequence[str], path: Path, what: str) -> list[int]:
        """All values as integers; the first that is not one is named in a :class:`DatasetError`."""
        try:
            return [int(value) for value in values]
        except ValueError:
            for value in values:
                self._to_int(value, path, what)
            raise

    def _to_int(self, value: str, path: Path, what: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise DatasetError(f"{self.registry_name}: {path}: {what} {value!r} is not an integer") from None
