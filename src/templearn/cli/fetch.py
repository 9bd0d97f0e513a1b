"""`templearn fetch ID...`: download mmCIF files by PDB ID into the local cache."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    ids: list[str] = typer.Argument(
        ..., metavar="ID", help="PDB IDs: 4 characters (4v5d) or the extended form "
                                   "(pdb_00004v5d)."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache folder. Default: $TEMPLEARN_CACHE/pdb, else "
                                  "~/.cache/templearn/pdb."),
    rcsb_url: str | None = typer.Option(
        None, "--rcsb-url", help="Base URL of the RCSB file server (a mirror). Default: "
                                 "$TEMPLEARN_RCSB_URL, else https://files.rcsb.org/download."),
    pdbe_url: str | None = typer.Option(
        None, "--pdbe-url", help="Base URL of the PDBe fallback. Default: $TEMPLEARN_PDBE_URL, "
                                 "else https://www.ebi.ac.uk/pdbe/entry-files/download."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1,
                                  help="Seconds to wait for a server."),
) -> None:
    """Download atomic models (mmCIF) by PDB ID from the RCSB PDB, with PDBe as fallback,
    into a cache (files already there are reused), and print the path of each file.

    Exit status 2 for a malformed or unknown ID, 3 for a network failure (retry later)."""
    from templearn.fetch import fetch_structure, pdb_id

    entries = list(dict.fromkeys(pdb_id(i) for i in ids))  # all IDs checked before fetching
    for entry in entries:
        typer.echo(str(fetch_structure(entry, cache_dir, rcsb_url, pdbe_url, timeout)))
