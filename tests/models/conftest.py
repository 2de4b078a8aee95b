import pytest


@pytest.fixture(scope="session")
def small_table(paths):
    """The feature table with ATOP any-obligation labels for 1946-1991, built in memory."""
    from foedus.jobs import build

    return build("atop:any:1", 1946, 1991, paths=paths, write=False).table
