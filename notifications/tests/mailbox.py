"""Helpers for tests that read the mail the site sends: what pytest-django's locmem
backend (`mailoutbox`) received once the tasks ran (`run_tasks`), and a form posted the
way a browser posts it. They know no domain app: any app's tests may use them."""

from urllib.parse import urlencode


def post_form(client, path: str, data: dict, **extra):
    """POST `data` URL-encoded, as a browser's form does (the test client's default is multipart)."""
    return client.post(path, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded", **extra)


def settle(run_tasks, mailoutbox) -> None:
    """Deliver the mail the set-up queued (fixtures report incidents) and forget it."""
    run_tasks()
    mailoutbox.clear()


def by_recipient(messages) -> dict[str, list]:
    """Messages keyed by their one recipient (every message goes to exactly one address)."""
    found: dict[str, list] = {}
    for message in messages:
        assert len(message.to) == 1, message.to
        assert message.cc == [] and message.bcc == []
        found.setdefault(message.to[0], []).append(message)
    return found


def html_of(message) -> str:
    assert len(message.alternatives) == 1
    content, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    return content
