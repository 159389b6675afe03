import pytest

from core.media import looks_like_html, looks_like_video, safe_filename, video_container


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x00\x00\x00\x20ftypisom" + bytes(500), "mp4"),
        (b"\x1a\x45\xdf\xa3" + bytes(500), "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"OggS\x00\x02", "ogg"),
        ((b"\x47" + bytes(187)) * 2, "mpegts"),
        ((bytes(4) + b"\x47" + bytes(187)) * 2, "mpegts"),
    ],
)
def test_every_channel_recognises_the_same_containers(head: bytes, container: str) -> None:
    assert video_container(head) == container
    assert looks_like_video(head)


@pytest.mark.parametrize("head", [b"", b"<!doctype html>", b"%PDF-1.7", b"\x89PNG\r\n", b"hello"])
def test_pages_documents_and_pictures_are_not_videos(head: bytes) -> None:
    assert not looks_like_video(head)


def test_a_login_page_is_told_apart() -> None:
    assert looks_like_html(b"\xef\xbb\xbf\n <html>")
    assert not looks_like_html(b"\x00\x00\x00\x20ftyp")


def test_file_names_lose_paths_encodings_and_odd_characters() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("my%20clip.mp4") == "my_clip.mp4"
    assert safe_filename("Café vidéo.mov") == "Cafe_video.mov"
    assert safe_filename("..", fallback="upload.mp4") == "upload.mp4"
