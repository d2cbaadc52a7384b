"""Group commit (`gitops.sync.sync_many`): several Desireds of one branch, disjoint roots, ONE
commit; a drifted or invalid Desired is left out with its own error while the others commit, and
a Desired with nothing to change gets its head without a commit."""

from __future__ import annotations

import pytest

from gitops.backend import Author, GitDrift, blob_sha
from gitops.sync import Desired, backend, sync, sync_many
from gitops.validation import ManifestError
from tests.gitutil import commits, git, show

AUTHOR = Author("Ann", "ann@example.test")
VALID = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  n: '{n}'\n"


def _desired(name: str, n: int = 1, **extra: object) -> Desired:
    root = f"things/{name}/"
    return Desired(
        owner="system",
        repo="catalyst-config",
        branch="main",
        root=root,
        files={f"{root}cm.yaml": VALID.format(name=name, n=n)},
        **extra,  # type: ignore[arg-type]
    )


def _compose(calls: list[list[int]]):
    def compose(changed: list[int]) -> tuple[Author, str]:
        calls.append(changed)
        return AUTHOR, "group " + ",".join(map(str, changed))

    return compose


def test_one_commit_carries_every_desired_and_an_unchanged_one_gets_the_head():
    sync(_desired("a"), author=AUTHOR, message="seed a")
    calls: list[list[int]] = []
    outcomes = sync_many([_desired("a"), _desired("b"), _desired("c")], compose=_compose(calls))
    assert commits() == ["group 1,2", "seed a", "Initial commit"]
    assert calls == [[1, 2]]
    head = git("system", "catalyst-config", "rev-parse", "main").strip()
    assert all(not isinstance(o, Exception) for o in outcomes)
    assert [o.head for o in outcomes] == [head, head, head]  # type: ignore[union-attr]
    assert [o.committed for o in outcomes] == [False, True, True]  # type: ignore[union-attr]
    assert outcomes[1].blobs == {  # type: ignore[union-attr]
        "things/b/cm.yaml": blob_sha(VALID.format(name="b", n=1).encode())
    }
    assert show("things/c/cm.yaml") == VALID.format(name="c", n=1)
    # nothing to change at all: no commit, every Desired still gets the head
    again = sync_many([_desired("a"), _desired("b")], compose=_compose(calls))
    assert commits()[0] == "group 1,2" and len(calls) == 1
    assert [o.head for o in again] == [head, head]  # type: ignore[union-attr]


def test_a_drifted_and_an_invalid_desired_fail_alone_and_the_others_commit():
    first = sync(_desired("d"), author=AUTHOR, message="seed d")
    # someone changes d's file in Git after the portal wrote it
    sync(_desired("d", n=9), author=Author("Eve", "eve@example.test"), message="by hand")
    drifted = _desired("d", n=2, base=first.blobs)
    invalid = Desired(
        owner="system",
        repo="catalyst-config",
        branch="main",
        root="things/bad/",
        files={"things/bad/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
    )
    calls: list[list[int]] = []
    outcomes = sync_many([drifted, invalid, _desired("e")], compose=_compose(calls))
    assert isinstance(outcomes[0], GitDrift) and outcomes[0].paths == ["things/d/cm.yaml"]
    assert isinstance(outcomes[1], ManifestError)
    assert not isinstance(outcomes[2], Exception) and outcomes[2].committed
    assert calls == [[2]] and commits()[0] == "group 2"
    assert show("things/d/cm.yaml") == VALID.format(name="d", n=9)  # the change in Git stands
    assert "things/bad/cm.yaml" not in git("system", "catalyst-config", "ls-tree", "-r", "main")


def test_the_branch_moving_between_read_and_commit_is_retried(monkeypatch):
    """Another writer commits between the read and the commit: the group re-reads and lands on
    top of it, both changes kept."""
    sync(_desired("x"), author=AUTHOR, message="seed")
    real_commit = backend().commit
    raced: list[bool] = []

    def commit_after_a_rival(*args, **kwargs):
        if not raced:
            raced.append(True)
            sync(_desired("rival"), author=AUTHOR, message="rival")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(backend(), "commit", commit_after_a_rival)
    outcomes = sync_many([_desired("x", n=2), _desired("y")], compose=_compose([]))
    assert commits()[:2] == ["group 0,1", "rival"]
    assert show("things/rival/cm.yaml") and show("things/y/cm.yaml")
    assert [o.committed for o in outcomes] == [True, True]  # type: ignore[union-attr]


def test_overlapping_roots_or_other_branches_are_refused():
    nested = Desired(owner="system", repo="catalyst-config", branch="main", root="things/a/b/")
    with pytest.raises(ValueError, match="overlap"):
        sync_many([_desired("a"), nested], compose=_compose([]))
    other = Desired(owner="system", repo="catalyst-config", branch="dev", root="things/z/")
    with pytest.raises(ValueError, match="one owner, repo and branch"):
        sync_many([_desired("a"), other], compose=_compose([]))
    assert commits() == []
