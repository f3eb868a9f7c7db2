"""Text locks: the corpus's sentences read from a fixed list of files, whatever else the
machine has installed (training/data/debian.py). Runs on a fake Debian root: a dpkg
status file, package file lists, copyright files and gettext catalogues made here."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from training.data import build
from training.data.debian import TextFiles, TextLock, installed_versions
from training.data.texts import corpus_origins, corpus_sentences, english_prose

PROSE = {
    "alpha": "You may copy and share this program with anyone you like. Keep the notice with every copy you make.",
    "beta": "The authors give no warranty of any kind for this work. Use it at your own risk and enjoy it.",
    "gamma": "Permission is granted to modify the sources as long as changes are marked clearly in each file.",
}
FRENCH = {
    "alpha": {"Open the file": "Ouvrez le fichier avant de continuer le travail.",
              "Save": "Enregistrez votre travail avant de quitter la fenêtre."},
    "beta": {"Quit": "Voulez-vous vraiment quitter cette application maintenant ?"},
    "gamma": {"Hi": "Bonjour à toutes les personnes présentes dans la salle."},
}  # fmt: skip


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU gettext catalogue (the .mo layout: header, two string tables)."""
    entries = sorted({"": "Content-Type: text/plain; charset=UTF-8\n", **messages}.items())
    ids = [k.encode() for k, _ in entries]
    strs = [v.encode() for _, v in entries]
    n = len(entries)
    start = 7 * 4 + 16 * n
    blob = b""
    ids_table, strs_table = [], []
    for table, items in ((ids_table, ids), (strs_table, strs)):
        for b in items:
            table.append((len(b), start + len(blob)))
            blob += b + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 28 + 16 * n)
    body = b"".join(struct.pack("<2I", *e) for e in ids_table + strs_table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + body + blob)


def fake_root(tmp_path: Path, packages: dict[str, str]) -> Path:
    """A root where each of ``packages`` (name: version) installed a copyright file and a
    French catalogue; "delta" is a link to gamma's doc folder, as Debian's -data packages
    often are; a hand-made catalogue belongs to no package."""
    root = tmp_path / "root"
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    status = []
    for name, version in packages.items():
        status.append(f"Package: {name}\nStatus: install ok installed\nVersion: {version}\n")
        listed = []
        if name in PROSE:
            doc = root / f"usr/share/doc/{name}/copyright"
            doc.parent.mkdir(parents=True)
            doc.write_text(PROSE[name] + "\n")
            listed.append(f"/usr/share/doc/{name}/copyright")
        if name in FRENCH:
            write_mo(root / f"usr/share/locale/fr/LC_MESSAGES/{name}.mo", FRENCH[name])
            listed.append(f"/usr/share/locale/fr/LC_MESSAGES/{name}.mo")
        if name == "delta":
            (root / "usr/share/doc/delta").symlink_to("gamma")
            listed.append("/usr/share/doc/delta")
        # Shared directories are listed by every package that puts files in them.
        (info / f"{name}:amd64.list").write_text("\n".join(["/usr", "/usr/share", *listed]) + "\n")
    status.append("Package: removed\nStatus: deinstall ok config-files\nVersion: 9\n")
    (root / "var/lib/dpkg/status").write_text("\n".join(status))
    write_mo(root / "usr/share/locale/fr/LC_MESSAGES/handmade.mo", {"Go": "Allons voir la mer avec les enfants demain."})
    return root


PACKAGES = {"alpha": "1.0", "beta": "2.0-1", "gamma": "3", "delta": "3"}


def test_installed_versions_and_owners(tmp_path: Path) -> None:
    root = fake_root(tmp_path, PACKAGES)
    assert installed_versions(root) == PACKAGES  # "removed" left only its configuration
    files = TextFiles(root=root)
    prefix = str(root)
    assert files.package_of(prefix + "/usr/share/doc/alpha/copyright") == "alpha"
    assert files.package_of(prefix + "/usr/share/doc/delta/copyright") == "delta"  # through the link
    assert files.package_of(prefix + "/usr/share/locale/fr/LC_MESSAGES/handmade.mo") is None
    assert files.glob("/usr/share/doc/*/copyright") == [
        f"{prefix}/usr/share/doc/{p}/copyright" for p in ("alpha", "beta", "delta", "gamma")
    ]
    only = TextFiles(frozenset({"/usr/share/doc/beta/copyright"}), root)
    assert only.glob("/usr/share/doc/*/copyright") == [f"{prefix}/usr/share/doc/beta/copyright"]


def test_reading_only_the_origins_gives_the_same_sentences(tmp_path: Path) -> None:
    root = fake_root(tmp_path, PACKAGES)
    every = TextFiles(root=root)
    prose = english_prose(files=every)
    assert {s.text for s in prose} >= {PROSE["alpha"].split(". ")[0] + "."}
    # delta's folder links to gamma's and sorts first: gamma's own copy only repeats it,
    # so the sentences' origin is delta's path, which belongs to delta (the link's package).
    assert {Path(s.origin).parent.name for s in prose} == {"alpha", "beta", "delta"}
    assert every.package_of(next(s.origin for s in prose if "/delta/" in s.origin)) == "delta"
    french = corpus_sentences("fr", every)
    assert "Allons voir la mer avec les enfants demain." in {s.text for s in french}
    origins = corpus_origins("fr", every) | corpus_origins("en", every)
    locked = TextFiles(frozenset(every.relative(p) for p in origins), root)
    assert corpus_sentences("fr", locked) == french
    assert english_prose(files=locked) == prose
    # A catalogue outside the lock is not read, even where it is installed.
    fewer = TextFiles(frozenset(every.relative(p) for p in origins if "handmade" not in p), root)
    assert "Allons voir la mer avec les enfants demain." not in {s.text for s in corpus_sentences("fr", fewer)}


def test_a_package_installed_later_does_not_change_locked_text(tmp_path: Path) -> None:
    first = fake_root(tmp_path, {"alpha": "1.0", "beta": "2.0-1"})
    every = TextFiles(root=first)
    before = corpus_sentences("fr", every) + english_prose(files=every)
    locked = frozenset(every.relative(p) for p in corpus_origins("fr", every) | corpus_origins("en", every))
    # Another machine: the same, plus "gamma" (another program's dependency, say),
    # whose catalogue and copyright file sort in between.
    other = tmp_path / "other"
    shutil.copytree(first, other, symlinks=True)
    write_mo(other / "usr/share/locale/fr/LC_MESSAGES/gamma.mo", FRENCH["gamma"])
    doc = other / "usr/share/doc/gamma/copyright"
    doc.parent.mkdir(parents=True)
    doc.write_text(PROSE["gamma"] + "\n")
    (other / "var/lib/dpkg/info/gamma.list").write_text(
        "/usr/share/doc/gamma/copyright\n/usr/share/locale/fr/LC_MESSAGES/gamma.mo\n"
    )
    unpinned = TextFiles(root=other)
    assert corpus_sentences("fr", unpinned) + english_prose(files=unpinned) != before
    pinned = TextFiles(locked, other)
    assert corpus_sentences("fr", pinned) + english_prose(files=pinned) == before


def lock_file(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(json.dumps(doc))
    return path


def test_lock_files_are_checked_with_one_line_errors(tmp_path: Path) -> None:
    good = {"packages": {"alpha": "1.0"}, "files": {"/usr/share/doc/alpha/copyright": "alpha"}}
    assert TextLock.load(lock_file(tmp_path, good)).packages == {"alpha": "1.0"}
    for bad, words in (
        ({"packages": {}}, "files"),
        ({**good, "extra": 1}, "extra"),
        ({"packages": {}, "files": {"/x": "alpha"}}, "alpha"),
    ):
        with pytest.raises(ValueError, match=words) as info:
            TextLock.load(lock_file(tmp_path, bad))
        assert "\n" not in str(info.value)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        TextLock.load(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="cannot read"):
        TextLock.load(tmp_path / "absent.json")


def test_check_lock_names_what_to_install(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = fake_root(tmp_path, PACKAGES)
    lock = TextLock(
        packages={"alpha": "1.0", "beta": "2.0-2", "zeta": "1", "eta": "2"},
        files={"/usr/share/doc/alpha/copyright": "alpha", "/usr/share/doc/beta/gone": "beta",
               "/usr/share/doc/zeta/copyright": "zeta"},
    )  # fmt: skip
    assert lock.check(installed_versions(root), root) == (["eta", "zeta"], ["beta"], ["/usr/share/doc/beta/gone"])
    with pytest.raises(SystemExit) as info:
        build.check_lock(lock, Path("lock.json"), root)
    message = str(info.value)
    assert "\n" not in message and "apt-get install eta zeta" in message
    ok = TextLock(packages={"alpha": "1.0", "beta": "2.0-2"}, files={"/usr/share/doc/beta/gone": "beta"})
    assert build.check_lock(ok, Path("lock.json"), root) == ("/usr/share/doc/beta/gone",)
    assert "differ in version" in caplog.text


def test_the_build_refuses_a_lock_whose_packages_are_missing(tmp_path: Path) -> None:
    path = lock_file(tmp_path, {"packages": {"no-such-package-here": "1"}, "files": {}})
    with pytest.raises(SystemExit, match="apt-get install no-such-package-here"):
        build.main(["--out", str(tmp_path / "corpus"), "--small", "--text-lock", str(path)])
    assert not (tmp_path / "corpus").exists()  # refused before anything was planned or written
