import gateway


def test_version_is_exported() -> None:
    assert gateway.__version__.count(".") == 2
