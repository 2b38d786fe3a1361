from cryptography.fernet import Fernet


def handler(event, context):
    return {"key_length": len(Fernet.generate_key())}
