"""ImageNet val boxes (csv repackaging) and the official PASCAL-VOC XML format."""

from __future__ import annotations

import numpy as np
import pytest

from tinylib.data import imagenet
from tinylib.data._parse import AnnotationError

XML = """<annotation>
\t<folder>val</folder>
\t<filename>ILSVRC2012_val_00000001</filename>
\t<source><database>ILSVRC_2012</database></source>
\t<size><width>500</width><height>375</height><depth>3</depth></size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>n01751748</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>
\t\t<bndbox><xmin>111</xmin><ymin>108</ymin><xmax>441</xmax><ymax>193</ymax></bndbox>
\t</object>
\t<object>
\t\t<name>n01751748</name><truncated>1</truncated><difficult>0</difficult>
\t\t<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>
\t</object>
</annotation>
"""


def test_voc_xml(tmp_path):
    path = tmp_path / "ILSVRC2012_val_00000001.xml"
    path.write_text(XML)
    df = imagenet.read_voc_xml(path)
    assert list(df.columns) == list(imagenet.VOC_COLUMNS)
    assert len(df) == 2
    assert df.iloc[0][["image", "wnid", "width", "height", "x1", "y1", "x2", "y2"]].tolist() == [
        "ILSVRC2012_val_00000001", "n01751748", 500, 375, 111, 108, 441, 193,
    ]
    assert df["truncated"].tolist() == [0, 1]
    assert len(imagenet.read_voc_dir(tmp_path)) == 2


def test_voc_xml_errors(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(XML.replace("<xmax>441</xmax>", "<xmax>4x1</xmax>"))
    with pytest.raises(AnnotationError, match=r"bad.xml.*<xmax>4x1</xmax> in <object> #1"):
        imagenet.read_voc_xml(bad)
    broken = tmp_path / "broken.xml"
    broken.write_text(XML.replace("</segmented>", ""))
    with pytest.raises(AnnotationError, match=r"broken.xml, line \d+"):
        imagenet.read_voc_xml(broken)
    nosize = tmp_path / "nosize.xml"
    nosize.write_text(XML.replace("<size>", "<sise>").replace("</size>", "</sise>"))
    with pytest.raises(AnnotationError, match="<size>"):
        imagenet.read_voc_xml(nosize)


def _root(tmp_path, loc_line="val/ILSVRC2012_val_00000002.JPEG,5,6,70,80"):
    d = tmp_path / "imagenet"
    d.mkdir()
    ids = ["val/ILSVRC2012_val_00000001.JPEG", "val/ILSVRC2012_val_00000002.JPEG"]
    (d / "ilsvrc2012_val_image_ids.txt").write_text("\n".join(ids) + "\n")
    (d / "ilsvrc2012_val_class_labels.txt").write_text(f"{ids[0]},1\n{ids[1]},0\n")
    (d / "ilsvrc2012_val_image_sizes.txt").write_text(f"{ids[0]},500,375\r\n{ids[1]},100,90\r\n")
    (d / "ilsvrc2012_val_localization.txt").write_text(
        f"{ids[0]},111,108,441,193\n{ids[0]},0,0,500,375\n{loc_line}\n"
    )
    (d / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    return tmp_path


def test_val_boxes_table(tmp_path):
    df = imagenet.load_val_boxes(_root(tmp_path))
    assert list(df.columns) == list(imagenet.COLUMNS)
    assert df["image"].tolist() == ["ILSVRC2012_val_00000001"] * 2 + ["ILSVRC2012_val_00000002"]
    assert df["class_name"].tolist() == ["goldfish", "goldfish", "tench"]
    assert df["wnid"].iloc[2] == "n01440764" and df["width"].iloc[2] == 100
    np.testing.assert_array_equal(df[["x1", "y1", "x2", "y2"]].iloc[0], [111, 108, 441, 193])


def test_val_boxes_bad_line(tmp_path):
    root = _root(tmp_path, loc_line="val/ILSVRC2012_val_00000002.JPEG,5,6,70")
    with pytest.raises(AnnotationError, match=r"localization.txt, line 3.*x_max"):
        imagenet.load_val_boxes(root)


def test_val_boxes_unknown_image(tmp_path):
    root = _root(tmp_path, loc_line="val/ILSVRC2012_val_00000009.JPEG,5,6,70,80")
    with pytest.raises(AnnotationError, match=r"line 3.*ILSVRC2012_val_00000009"):
        imagenet.load_val_boxes(root)


@pytest.mark.realdata
def test_real_val_boxes(real_data):
    df = imagenet.load_val_boxes()
    assert len(df) == 80477 and df["image"].nunique() == 50000
    first = df.iloc[0]
    assert (first["image"], first["class_index"], first["wnid"], first["class_name"]) == (
        "ILSVRC2012_val_00000001", 65, "n01751748", "sea snake",
    )
    assert (first["width"], first["height"]) == (500, 375)
    rel = np.sqrt((df.x2 - df.x1) * (df.y2 - df.y1) / (df.width * df.height))
    assert float(np.median(rel)) == pytest.approx(0.455, abs=0.001)
    assert df.groupby("image").size().between(1, 20).all()
    assert len(imagenet.load_synsets()) == 1000
