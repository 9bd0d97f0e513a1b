"""`templearn fetch`: downloads from a local HTTP server on loopback (no real network)."""

from __future__ import annotations

import gzip
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from templearn.errors import ExternalToolError, InputError
from templearn.fetch import fetch_structure, fetch_structures, pdb_id
from templearn.structure import read_structure
from tests.conftest import TINY_STRUCTURE

TIMEOUT = 5.0


def _refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch):
    """Default servers point at a closed loopback port; proxies are bypassed."""
    refused = _refused_url()
    monkeypatch.setenv("TEMPLEARN_RCSB_URL", refused)
    monkeypatch.setenv("TEMPLEARN_PDBE_URL", refused)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("TEMPLEARN_CACHE", raising=False)


@pytest.fixture
def server():
    """A loopback HTTP server: `routes` maps paths to (status, body); `requests` logs the
    paths asked for; unknown paths answer 404."""
    routes: dict[str, tuple[int, bytes]] = {}
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            status, body = routes.get(self.path, (404, b"Not Found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield SimpleNamespace(routes=routes, requests=requests,
                              rcsb=f"{url}/rcsb", pdbe=f"{url}/pdbe")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _serve_3qm1(server, rcsb: bool = True, pdbe: bool = True) -> None:
    """The committed 3QM1 test structure as RCSB (gzipped) and PDBe (plain) would serve it."""
    data = TINY_STRUCTURE.read_bytes()
    if rcsb:
        server.routes["/rcsb/3QM1.cif.gz"] = (200, data)
    if pdbe:
        server.routes["/pdbe/3qm1.cif"] = (200, gzip.decompress(data))


def _fetch(server, text: str, cache_dir) -> object:
    return fetch_structure(text, cache_dir, server.rcsb, server.pdbe, TIMEOUT)


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `templearn fetch ARGS` through the real entry point (its exit-status mapping)
    with the fetch command registered; return (status, stdout, stderr)."""
    import typer

    from templearn import cli
    from templearn.cli.fetch import command

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def _root() -> None:
        """templearn (fetch only)."""

    app.command("fetch")(command)
    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["templearn", "fetch", *args])
    try:
        cli.main()
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize(("text", "expected"), [
    ("4v5d", "4v5d"), ("4V5D", "4v5d"), (" 1abc ", "1abc"), ("pdb_00004v5d", "4v5d"),
    ("PDB_00001ABC", "1abc"), ("pdb_10001abc", "pdb_10001abc"),
    ("pdb_0001abcd", "pdb_0001abcd")])
def test_pdb_id_forms(text, expected):
    assert pdb_id(text) == expected


@pytest.mark.parametrize("text", ["abc", "12345", "0abc", "4v5d!", "4v-d", "", "pdb_1234",
                                  "pdb_0000abc", "pdb_00000abc", "pdb_1abc", "4v5d.cif"])
def test_malformed_ids_are_input_errors(text, tmp_path, server):
    with pytest.raises(InputError, match="not a PDB ID"):
        _fetch(server, text, tmp_path)
    assert server.requests == []


def test_fetch_downloads_validates_and_caches(server, tmp_path):
    _serve_3qm1(server)
    path = _fetch(server, "3QM1", tmp_path / "cache")
    assert path == tmp_path / "cache" / "3qm1.cif.gz"
    assert server.requests == ["/rcsb/3QM1.cif.gz"]
    model = read_structure(path)
    assert model.n_atoms == read_structure(TINY_STRUCTURE).n_atoms == 2028
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["3qm1.cif.gz"]  # no temp left


def test_cached_file_is_reused_without_request(server, tmp_path):
    _serve_3qm1(server)
    first = _fetch(server, "3qm1", tmp_path)
    n_requests = len(server.requests)
    second = _fetch(server, "pdb_00003qm1", tmp_path)
    assert second == first
    assert len(server.requests) == n_requests == 1


def test_falls_back_to_pdbe_when_rcsb_has_no_file(server, tmp_path):
    _serve_3qm1(server, rcsb=False)
    path = _fetch(server, "3qm1", tmp_path)
    assert server.requests == ["/rcsb/3QM1.cif.gz", "/pdbe/3qm1.cif"]
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # cached gzipped, like RCSB's files
    assert read_structure(path).n_atoms == 2028


def test_falls_back_when_rcsb_is_unreachable(server, tmp_path):
    _serve_3qm1(server)
    path = fetch_structure("3qm1", tmp_path, _refused_url(), server.pdbe, TIMEOUT)
    assert read_structure(path).n_atoms == 2028
    assert server.requests == ["/pdbe/3qm1.cif"]


def test_unknown_id_is_an_input_error(server, tmp_path):
    with pytest.raises(InputError, match=r"9zzz not found .*HTTP 404.*HTTP 404"):
        _fetch(server, "9zzz", tmp_path)
    assert not any(tmp_path.iterdir())


def test_non_mmcif_download_is_rejected_and_not_cached(server, tmp_path):
    server.routes["/rcsb/3QM1.cif.gz"] = (200, b"<html>maintenance</html>")
    server.routes["/pdbe/3qm1.cif"] = (200, b"data_3qm1\nloop_\n_atom_site.id\n1\n")
    with pytest.raises(ExternalToolError, match=r"not an mmCIF file.*not a usable mmCIF"):
        _fetch(server, "3qm1", tmp_path)
    assert not any(tmp_path.iterdir())


def test_entry_that_read_structure_rejects_is_an_input_error(server, tmp_path):
    no_atoms = b"data_3qm1\n_entry.id 3QM1\n"
    server.routes["/rcsb/3QM1.cif.gz"] = (200, gzip.compress(no_atoms))
    server.routes["/pdbe/3qm1.cif"] = (200, no_atoms)
    with pytest.raises(InputError, match="3qm1 cannot be used"):
        _fetch(server, "3qm1", tmp_path)
    assert not any(tmp_path.iterdir())


def test_server_error_then_not_found_is_a_network_failure(server, tmp_path):
    server.routes["/rcsb/3QM1.cif.gz"] = (503, b"busy")
    with pytest.raises(ExternalToolError, match=r"HTTP 503.*HTTP 404"):
        _fetch(server, "3qm1", tmp_path)


def test_environment_sets_cache_and_servers(server, tmp_path, monkeypatch):
    _serve_3qm1(server)
    monkeypatch.setenv("TEMPLEARN_CACHE", str(tmp_path / "root"))
    monkeypatch.setenv("TEMPLEARN_RCSB_URL", server.rcsb)
    [path] = fetch_structures(["3qm1", "3QM1"], timeout=TIMEOUT)
    assert path == tmp_path / "root" / "pdb" / "3qm1.cif.gz"


def test_cli_prints_paths(server, tmp_path, monkeypatch, capsys):
    _serve_3qm1(server)
    status, out, err = run_cli(monkeypatch, capsys, "3qm1", "--cache-dir", str(tmp_path),
                               "--rcsb-url", server.rcsb, "--pdbe-url", server.pdbe)
    assert status == 0, err
    assert out.splitlines() == [str(tmp_path / "3qm1.cif.gz")]


def test_cli_malformed_id_exits_2(server, tmp_path, monkeypatch, capsys):
    _serve_3qm1(server)
    status, out, err = run_cli(monkeypatch, capsys, "3qm1", "not-an-id", "--cache-dir",
                               str(tmp_path), "--rcsb-url", server.rcsb)
    assert status == 2
    assert out == "" and len(err.strip().splitlines()) == 1 and "not-an-id" in err
    assert server.requests == []  # every ID is checked before anything is fetched


def test_cli_unknown_id_exits_2(server, tmp_path, monkeypatch, capsys):
    status, _, err = run_cli(monkeypatch, capsys, "9zzz", "--cache-dir", str(tmp_path),
                             "--rcsb-url", server.rcsb, "--pdbe-url", server.pdbe)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "9zzz not found" in err


def test_cli_connection_refused_exits_3(tmp_path, monkeypatch, capsys):
    refused = _refused_url()
    status, out, err = run_cli(monkeypatch, capsys, "3qm1", "--cache-dir", str(tmp_path),
                               "--rcsb-url", refused, "--pdbe-url", refused,
                               "--timeout", str(TIMEOUT))
    assert status == 3
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "connection refused" in err
    assert not any(tmp_path.iterdir())
