"""Python writers follow the CLI's destination rules (hexz_format::destination).

Before, ``hexz.Writer(path)`` and ``hexz.build(recipe)`` replaced whatever file was
at the output (text, an input, a read-only file), and ``Writer.add`` of a folder
holding the output was taken.
"""

from __future__ import annotations

import os

import pytest

import hexz


def test_writer_replaces_archives_only_unless_forced(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"precious")
    with pytest.raises(hexz.InvalidInputError, match="not a hexz archive"):
        hexz.Writer(notes)
    assert notes.read_bytes() == b"precious"
    with hexz.Writer(notes, force=True) as w:
        w.add_bytes("a", b"forced")
    assert hexz.open(notes).read("a") == b"forced"
    # Now an archive: replaced without force.
    with hexz.Writer(notes) as w:
        w.add_bytes("a", b"again")
    assert hexz.open(notes).read("a") == b"again"
    # Read-only: never, even forced.
    os.chmod(notes, 0o444)
    for force in (False, True):
        with pytest.raises(hexz.InvalidInputError, match="read-only"):
            hexz.Writer(notes, force=force)
    assert hexz.open(notes).read("a") == b"again"


def test_writer_add_refuses_the_folder_holding_the_output(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha")
    w = hexz.Writer(data / "out.hxz")
    with pytest.raises(hexz.InvalidInputError, match="inside the folder being added"):
        w.add(data)
    w.add(data / "a.txt")
    w.finish()
    assert hexz.open(data / "out.hxz").namelist() == ["a.txt"]


def test_build_refuses_outputs_that_are_inputs_or_other_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("inputs:\n  - path: data/\noutput: data/a.txt\n")
    with pytest.raises(hexz.InvalidInputError, match="inside an input folder"):
        hexz.build(recipe)
    with pytest.raises(hexz.InvalidInputError, match="inside an input folder"):
        hexz.build(recipe, force=True)
    assert (data / "a.txt").read_bytes() == b"alpha"
    (tmp_path / "keep.txt").write_bytes(b"precious")
    recipe.write_text("inputs:\n  - path: data/\noutput: keep.txt\n")
    with pytest.raises(hexz.InvalidInputError, match="not a hexz archive"):
        hexz.build(recipe)
    assert (tmp_path / "keep.txt").read_bytes() == b"precious"
    hexz.build(recipe, force=True)
    assert hexz.open(tmp_path / "keep.txt").namelist() == ["a.txt"]
