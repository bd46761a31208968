"""A PlatformKeyStore written in Python with `cryptography`: EC P-256 keys,
each in its own PEM file encrypted with a password, signatures in DER (as
Android Keystore and the Secure Enclave return them). `mode` scripts what
the "platform" does, to exercise the SDK's error handling."""

import hashlib
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import devicetrust



class CryptographyKeyStore(devicetrust.PlatformKeyStore):
    def __init__(self, folder, password=b"test-key-password"):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.mode = "normal"
        self.prompts = []

    def _path(self, alias):
        return self.folder / (hashlib.sha256(alias.encode()).hexdigest()[:32] + ".pem")

    async def generate_key(self, alias, user_verification, attestation_challenge):
        # A software key: nothing to attest, the challenge is not used.
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self.password),
        )
        self._path(alias).write_bytes(pem)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return devicetrust.GeneratedKey(
            public_key=public, storage=devicetrust.KeyStorage.SOFTWARE, attestation=None)

    async def sign(self, alias, data, prompt):
        self.prompts.append(prompt.title)
        if self.mode == "cancel":
            raise devicetrust.PlatformKeyError.Cancelled()
        if self.mode == "biometrics_changed":
            raise devicetrust.PlatformKeyError.KeyInvalidated()
        path = self._path(alias)
        if not path.exists():
            raise devicetrust.PlatformKeyError.KeyNotFound()
        key = serialization.load_pem_private_key(path.read_bytes(), self.password)
        return key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))

    async def delete_key(self, alias):
        self._path(alias).unlink(missing_ok=True)

    async def key_exists(self, alias):
        return self._path(alias).exists()

    def key_count(self):
        return len(list(self.folder.glob("*.pem")))
