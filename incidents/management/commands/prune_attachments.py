"""Delete stored attachment files that no row names: what a process killed between storing
a file and committing its row left behind (a service that raises removes its own files)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from incidents.models import Attachment, attachment_storage

FOLDER = "attachments"


class Command(BaseCommand):
    help = "Delete stored attachment files without a row, older than --older-than minutes (default 60)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            help="Leave younger files alone: their upload may still be committing.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be deleted.")

    def handle(self, *args, older_than, dry_run, **options):
        storage = attachment_storage()
        try:
            _, names = storage.listdir(FOLDER)
        except FileNotFoundError:  # the file system before the first upload
            names = []
        known = set(Attachment.objects.values_list("file", flat=True)) | set(
            Attachment.objects.exclude(thumbnail="").values_list("thumbnail", flat=True)
        )
        cutoff = timezone.now() - timedelta(minutes=older_than)
        pruned = 0
        for name in sorted(f"{FOLDER}/{name}" for name in names):
            if name in known or storage.get_modified_time(name) > cutoff:
                continue
            pruned += 1
            self.stdout.write(f"{'would delete' if dry_run else 'deleted'} {name}")
            if not dry_run:
                storage.delete(name)
        self.stdout.write(f"{pruned} orphaned file{'s' if pruned != 1 else ''}{' found' if dry_run else ' deleted'}.")
