import pytest

from fortmap.errors import OutputExistsError
from fortmap.io.output import atomic_dir


def test_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_refused_then_replaced_with_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"), atomic_dir(out):
        pass
    assert (out / "old.txt").exists()
    with atomic_dir(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_existing_dir_is_fine(tmp_path):
    (tmp_path / "out").mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    assert (tmp_path / "out" / "a").exists()


def test_output_holding_an_input_is_refused_even_with_force(tmp_path):
    from fortmap.errors import InputError
    from fortmap.io.output import check_output_dir

    out = tmp_path / "data"
    out.mkdir()
    (out / "before.tif").write_bytes(b"input")
    for inputs in ([out / "before.tif"], [str(out / "before.tif"), None, "30.1,50.2,400"]):
        with pytest.raises(InputError, match="would replace the input"):
            check_output_dir(out, True, inputs)
        with (
            pytest.raises(InputError, match="would replace the input"),
            atomic_dir(out, force=True, inputs=inputs),
        ):
            pass
    assert (out / "before.tif").read_bytes() == b"input"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    # an output beside the inputs is fine
    with atomic_dir(tmp_path / "run", inputs=[out / "before.tif"]) as tmp:
        (tmp / "a").write_text("a")


def test_output_that_is_the_working_folder_is_refused(tmp_path, monkeypatch):
    from fortmap.errors import InputError
    from fortmap.io.output import check_output_dir

    monkeypatch.chdir(tmp_path)
    for out in (".", tmp_path.parent):
        with pytest.raises(InputError, match="current folder"):
            check_output_dir(out, True)


def test_run_analysis_refuses_to_delete_its_inputs(pair, tmp_path):
    from fortmap.analysis import run_analysis
    from fortmap.errors import InputError

    b, a, _ = pair
    with pytest.raises(InputError, match="would replace the input"):
        run_analysis(b, a, tmp_path, force=True)
    assert b.exists() and a.exists()
