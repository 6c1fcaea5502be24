"""One embedded tiled app per process: opening the catalog again leaves earlier clients working."""

from __future__ import annotations


def test_a_second_open_keeps_the_first_client_authenticated() -> None:
    from storage.catalog import open_catalog
    from storage.scans import labelled_scans

    first = open_catalog()
    assert labelled_scans(first, "space_group", labelled_after=0.0) == []
    second = open_catalog()  # e.g. the agent's label reader after the session's TiledWriter
    # a filtered search goes through tiled's authentication (401 with a second app's key)
    assert labelled_scans(first, "space_group", labelled_after=0.0) == []
    assert labelled_scans(second, "space_group", labelled_after=0.0) == []
