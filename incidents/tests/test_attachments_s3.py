"""Attachments in S3-compatible storage (django-storages), against a real S3 server: moto's
server mode on loopback, on a free port, for this module's tests."""

import hashlib
from io import StringIO

import boto3
import pytest
from django.core.management import call_command
from moto.server import ThreadedMotoServer

from incidents import services
from incidents.models import Attachment, attachment_storage

from . import samples
from .factories import api_client, make_incident

BUCKET = "irms-evidence"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(settings, s3_endpoint):
    """The attachments storage pointed at a fresh bucket on the moto server."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "location": "irms",
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    attachment_storage().reset()
    yield client
    attachment_storage().reset()
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_an_upload_is_stored_in_the_bucket_and_streamed_back_through_the_checked_view(s3, reporter, public_incident):
    # given
    client = api_client(reporter)
    photo = samples.image("JPEG", gps=True)

    # when
    body = client.post(
        f"/api/incidents/{public_incident.incident_id}/attachments",
        {"file": samples.upload("pipe.jpg", photo)},
        format="multipart",
    ).json()
    served = client.get(body["url"])
    data = b"".join(served.streaming_content)

    # then
    attachment = Attachment.objects.get()
    assert keys(s3) == {f"irms/{attachment.file.name}", f"irms/{attachment.thumbnail.name}"}
    stored = s3.get_object(Bucket=BUCKET, Key=f"irms/{attachment.file.name}")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == body["sha256"] == hashlib.sha256(data).hexdigest()
    assert served["Content-Security-Policy"] == "sandbox; default-src 'none'"
    acl = s3.get_object_acl(Bucket=BUCKET, Key=f"irms/{attachment.file.name}")
    assert not [grant for grant in acl["Grants"] if "AllUsers" in str(grant["Grantee"])]


def test_a_hidden_incidents_file_in_the_bucket_is_a_404(s3, reporter, other, private_incident):
    # given
    body = (
        api_client(reporter)
        .post(
            f"/api/incidents/{private_incident.incident_id}/attachments",
            {"file": samples.upload("auth.log", samples.TEXT)},
            format="multipart",
        )
        .json()
    )

    # when
    response = api_client(other).get(body["url"])

    # then
    assert response.status_code == 404


def test_a_refused_report_leaves_nothing_in_the_bucket(s3, reporter, monkeypatch):
    # given: the second row fails after both files reached the bucket
    incident = make_incident(reporter)
    save, calls = Attachment.save, []

    def failing_save(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 2:
            raise RuntimeError("database gone")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Attachment, "save", failing_save)
    files = [samples.upload(f"p{n}.txt", samples.TEXT) for n in (1, 2)]

    # when
    with pytest.raises(RuntimeError):
        services.add_response(incident=incident, author=reporter, description="Logs.", files=files)

    # then
    assert keys(s3) == set()


def test_prune_attachments_deletes_an_orphan_from_the_bucket(s3, reporter, public_incident):
    # given: one attachment with its row, and an object a killed worker left
    api_client(reporter).post(
        f"/api/incidents/{public_incident.incident_id}/attachments",
        {"file": samples.upload("auth.log", samples.TEXT)},
        format="multipart",
    )
    s3.put_object(Bucket=BUCKET, Key="irms/attachments/orphan", Body=b"left behind")

    # when
    call_command("prune_attachments", "--older-than", "0", stdout=StringIO())

    # then
    assert keys(s3) == {f"irms/{Attachment.objects.get().file.name}"}
