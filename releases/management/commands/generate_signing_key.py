"""Write a new ECDSA P-256 signing key pair for ``SIGNING_KEY``: ``cosign.key`` and ``cosign.pub``.

The private key is PKCS#8 PEM, encrypted when a password is given (``--password-stdin``, or asked
for twice on a terminal with ``--encrypt``): set ``SIGNING_KEY=<dir>/cosign.key`` and
``SIGNING_KEY_PASSWORD``. Existing files are never overwritten.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from releases.signing import generate_key_pair, key_id, load_public_key


class Command(BaseCommand):
    help = "Write a new ECDSA P-256 key pair (cosign.key, private, mode 0600; cosign.pub) into a directory."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        password = parser.add_mutually_exclusive_group()
        password.add_argument("--encrypt", action="store_true", help="ask for a password (twice) on the terminal")
        password.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="keep the key pair already in the directory (both files) instead of refusing (bin/run's demo key)",
        )

    def handle(
        self, *args, directory: Path, encrypt: bool, password_stdin: bool, if_missing: bool = False, **options
    ) -> None:
        private_path, public_path = directory / "cosign.key", directory / "cosign.pub"
        existing = [str(path) for path in (private_path, public_path) if path.exists()]
        if if_missing and len(existing) == 2:
            kept = key_id(load_public_key(public_path.read_bytes()))
            self.stdout.write(f"using the key pair already in {directory} (key id {kept})")
            return
        if existing:
            raise CommandError(f"{', '.join(existing)} already exist(s); move them away or choose another directory")
        password = self.read_password(encrypt, password_stdin)
        private_pem, public_pem = generate_key_pair(password)
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as private_file:
            private_file.write(private_pem)
        public_path.write_bytes(public_pem)
        self.stdout.write(f"wrote {private_path} (private{', encrypted' if password else ''}) and {public_path}")
        self.stdout.write(f"key id {key_id(load_public_key(public_pem))}")
        self.stdout.write(
            f"set SIGNING_KEY={private_path}"
            + (" and SIGNING_KEY_PASSWORD" if password else "")
            + "; keep the old public key in TRUSTED_SIGNING_KEYS when this one replaces it"
        )

    def read_password(self, encrypt: bool, password_stdin: bool) -> str | None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif encrypt:
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                raise CommandError("the two passwords differ; run the command again")
        else:
            return None
        if not password:
            raise CommandError("the password is empty; give one, or leave out --encrypt/--password-stdin")
        return password
