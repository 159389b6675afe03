"""The pure link signing functions."""

from __future__ import annotations

from core.storage.signing import sign, signed_url, verify

SECRET = b"k" * 32


def test_signature_is_valid_until_it_expires() -> None:
    sig = sign(SECRET, "outputs/a.mp4", 1000)
    assert verify(SECRET, "outputs/a.mp4", "1000", sig, now=999.5)
    assert verify(SECRET, "outputs/a.mp4", 1000, sig, now=1000)
    assert not verify(SECRET, "outputs/a.mp4", 1000, sig, now=1000.5)


def test_any_change_breaks_the_signature() -> None:
    sig = sign(SECRET, "outputs/a.mp4", 1000)
    assert not verify(SECRET, "outputs/b.mp4", 1000, sig, now=0)
    assert not verify(SECRET, "outputs/a.mp4", 1001, sig, now=0)
    assert not verify(b"other", "outputs/a.mp4", 1000, sig, now=0)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert not verify(SECRET, "outputs/a.mp4", 1000, flipped, now=0)
    assert not verify(SECRET, "outputs/a.mp4", "soon", sig, now=0)
    assert not verify(SECRET, "outputs/a.mp4", 1000, "", now=0)


def test_signed_url_quotes_the_key() -> None:
    url = signed_url("https://x.example/", SECRET, "inputs/j/my clip.mp4", 60, now=100)
    assert url == (
        "https://x.example/files/inputs/j/my%20clip.mp4"
        f"?expires=160&signature={sign(SECRET, 'inputs/j/my clip.mp4', 160)}"
    )
