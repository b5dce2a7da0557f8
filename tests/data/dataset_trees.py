"""Builders of tiny data set trees in exactly the official on-disk formats (docs/datasets.md),
and a local HTTP server that stands in for the network. Fixtures: conftest.py."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def write_image(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), color).save(
        path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
    )


# ---- CUB-200-2011 ----------------------------------------------------------------------------

CUB_IMAGES_PER_CLASS = {1: 2, 2: 3, 100: 1, 101: 1, 150: 2}  # 1, 2, 100 train; 101, 150 test


def build_cub_tree(tmp_path: Path):
    """<tmp>/CUB_200_2011 with the classes of CUB_IMAGES_PER_CLASS. images.txt and
    image_class_labels.txt list the ids in different orders. Returns (root, {relpath: class})."""
    folder = tmp_path / "CUB_200_2011"
    entries = []
    image_id = 0
    for cls, count in CUB_IMAGES_PER_CLASS.items():
        for k in range(count):
            image_id += 1
            rel = f"{cls:03d}.Bird_{cls}/Bird_{cls}_{k:04d}.jpg"
            entries.append((image_id, rel, cls))
            write_image(folder / "images" / rel)
    folder.mkdir(exist_ok=True)
    (folder / "images.txt").write_text("".join(f"{i} {rel}\n" for i, rel, _ in entries))
    (folder / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, _, c in reversed(entries)))
    (folder / "classes.txt").write_text("".join(f"{c} {c:03d}.Bird_{c}\n" for c in CUB_IMAGES_PER_CLASS))
    (folder / "train_test_split.txt").write_text("".join(f"{i} {i % 2}\n" for i, _, _ in entries))
    return tmp_path, {rel: cls for _, rel, cls in entries}


# ---- Cars196 ---------------------------------------------------------------------------------

CARS_CLASSES = [1, 1, 98, 98, 98, 99, 196, 196, 50]  # class of image 000001.jpg, 000002.jpg, ...

_CARS_FIELDS = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]


def write_cars_annos(path: Path, classes: list[int], test_flags: list[int], num_names: int = 196) -> None:
    """A MATLAB file shaped like the real cars_annos.mat: a 1 x N struct array ``annotations``
    and a 1 x C cell array ``class_names``."""
    annotations = np.zeros((1, len(classes)), dtype=[(f, "O") for f in _CARS_FIELDS])
    for i, (cls, test) in enumerate(zip(classes, test_flags)):
        annotations[0, i] = (
            f"car_ims/{i + 1:06d}.jpg",
            np.uint8(3),
            np.uint8(4),
            np.uint16(300),
            np.uint16(200),
            np.uint8(cls),
            np.uint8(test),
        )
    names = np.empty((1, num_names), dtype=object)
    for c in range(num_names):
        names[0, c] = f"Maker Model {c + 1}"
    scipy.io.savemat(path, {"annotations": annotations, "class_names": names})


def build_cars_tree(tmp_path: Path):
    folder = tmp_path / "cars196"
    folder.mkdir()
    # the `test` flags deliberately disagree with the class-based split
    write_cars_annos(folder / "cars_annos.mat", CARS_CLASSES, [1, 0, 1, 0, 1, 0, 1, 0, 1])
    for i in range(len(CARS_CLASSES)):
        write_image(folder / "car_ims" / f"{i + 1:06d}.jpg")
    return tmp_path


# ---- Stanford Online Products ----------------------------------------------------------------

SOP_TRAIN = [
    (1, 1, 1, "bicycle_final/111085122871_0.JPG"),
    (2, 1, 1, "bicycle_final/111085122871_1.JPG"),
    (3, 2, 3, "chair_final/1111_0.JPG"),
]
SOP_TEST = [
    (1, 11319, 1, "bicycle_final/2222_0.JPG"),
    (2, 11320, 12, "toaster_final/3333_0.JPG"),
    (3, 11320, 12, "toaster_final/3333_1.JPG"),
    (4, 11320, 12, "toaster_final/3333_2.JPG"),
]


def write_sop_lists(folder: Path, in_info_files: bool = False) -> None:
    lists = folder / "Info_Files" if in_info_files else folder
    lists.mkdir(parents=True, exist_ok=True)
    for name, rows in (("Ebay_train.txt", SOP_TRAIN), ("Ebay_test.txt", SOP_TEST)):
        body = "".join(f"{i} {c} {s} {p}\n" for i, c, s, p in rows)
        (lists / name).write_text("image_id class_id super_class_id path\n" + body)
    for _, _, _, rel in SOP_TRAIN + SOP_TEST:
        write_image(folder / rel)


def build_sop_tree(tmp_path: Path):
    write_sop_lists(tmp_path / "Stanford_Online_Products")
    return tmp_path


# ---- In-Shop ---------------------------------------------------------------------------------

INSHOP_ROWS = [
    ("img/WOMEN/Dresses/id_00000002/02_1_front.jpg", "id_00000002", "train"),
    ("img/WOMEN/Dresses/id_00000002/02_2_side.jpg", "id_00000002", "train"),
    ("img/MEN/Denim/id_00000080/01_1_front.jpg", "id_00000080", "query"),
    ("img/MEN/Denim/id_00000080/01_2_side.jpg", "id_00000080", "gallery"),
    ("img/WOMEN/Tees/id_00000001/01_1_front.jpg", "id_00000001", "train"),
    ("img/MEN/Denim/id_00000079/01_1_front.jpg", "id_00000079", "query"),
    ("img/MEN/Denim/id_00000079/01_4_full.jpg", "id_00000079", "gallery"),
]


def write_inshop_partition(path: Path, rows, declared: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = len(rows) if declared is None else declared
    body = "".join(f"{name}   {item}   {status}\n" for name, item, status in rows)
    path.write_text(f"{count}\nimage_name item_id evaluation_status\n{body}")


def build_inshop_tree(tmp_path: Path):
    folder = tmp_path / "InShop"
    write_inshop_partition(folder / "Eval" / "list_eval_partition.txt", INSHOP_ROWS)
    for name, _, _ in INSHOP_ROWS:
        write_image(folder / name)
    return tmp_path


# ---- iNaturalist 2021 ------------------------------------------------------------------------

#: supercategory -> number of classes (so that n // 2 differs from n / 2 for odd n)
INAT_SUPERCATEGORIES = {"Plants": 9, "Birds": 6, "Amphibians": 1, "Fungi": 4}
INAT_IMAGES_PER_CLASS = 2


def inat_annotations() -> dict:
    """An iNat-2021-style annotation dict; category ids interleave the supercategories."""
    categories, images, annotations = [], [], []
    names = [s for s, n in INAT_SUPERCATEGORIES.items() for _ in range(n)]
    order = np.random.default_rng(123).permutation(len(names))
    for cid, index in enumerate(order):
        superc = names[index]
        dir_name = f"{cid:05d}_Kingdom_{superc}_sp{cid}"
        categories.append(
            {"id": cid, "name": f"Species {cid}", "supercategory": superc, "image_dir_name": dir_name}
        )
        for k in range(INAT_IMAGES_PER_CLASS):
            image_id = len(images) + 1000
            images.append(
                {"id": image_id, "file_name": f"train_mini/{dir_name}/{cid}-{k}.jpg", "width": 4, "height": 3}
            )
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": cid})
    return {
        "info": {},
        "images": images,
        "categories": categories,
        "annotations": annotations,
        "licenses": [],
    }


def build_inat_tree(tmp_path: Path):
    folder = tmp_path / "iNaturalist2021"
    folder.mkdir()
    data = inat_annotations()
    (folder / "train_mini.json").write_text(json.dumps(data))
    for image in data["images"]:
        write_image(folder / image["file_name"])
    return tmp_path, data


# ---- a local HTTP server ---------------------------------------------------------------------


class FakeServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1 and records the requests.

    ``honour_range``: answer ``Range: bytes=N-`` with 206 and the tail (else 200 and everything).
    ``cut_after``: path -> number of bytes after which the connection is dropped (once).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.cut_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if range_header and server.honour_range:
                    start = int(range_header.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    payload = payload[:cut]
                server.bytes_sent += len(payload)  # counted first: the client may finish before write returns
                self.wfile.write(payload)
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
