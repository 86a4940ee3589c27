"""PKCS#11 numbers the bridge uses, as typed ints.

They are the standard Cryptoki values; keeping them here lets the fake backend and the job code
speak PKCS#11 templates without importing the native PyKCS11 module.
"""

from __future__ import annotations

from typing import Final

# object classes
CKO_DATA: Final = 0x0
CKO_CERTIFICATE: Final = 0x1
CKO_PUBLIC_KEY: Final = 0x2
CKO_PRIVATE_KEY: Final = 0x3

# key and certificate types
CKK_RSA: Final = 0x0
CKK_EC: Final = 0x3
CKC_X_509: Final = 0x0

# attributes
CKA_CLASS: Final = 0x0
CKA_TOKEN: Final = 0x1
CKA_PRIVATE: Final = 0x2
CKA_LABEL: Final = 0x3
CKA_APPLICATION: Final = 0x10
CKA_VALUE: Final = 0x11
CKA_CERTIFICATE_TYPE: Final = 0x80
CKA_KEY_TYPE: Final = 0x100
CKA_SUBJECT: Final = 0x101
CKA_ID: Final = 0x102
CKA_SENSITIVE: Final = 0x103
CKA_SIGN: Final = 0x108
CKA_VERIFY: Final = 0x10A
CKA_MODULUS: Final = 0x120
CKA_MODULUS_BITS: Final = 0x121
CKA_PUBLIC_EXPONENT: Final = 0x122
CKA_EXTRACTABLE: Final = 0x162
CKA_EC_PARAMS: Final = 0x180
CKA_EC_POINT: Final = 0x181

# mechanisms
CKM_RSA_PKCS_KEY_PAIR_GEN: Final = 0x0
CKM_SHA256_RSA_PKCS: Final = 0x40
CKM_EC_KEY_PAIR_GEN: Final = 0x1040
CKM_ECDSA: Final = 0x1041

# user types
CKU_SO: Final = 0
CKU_USER: Final = 1

# token flags
CKF_TOKEN_INITIALIZED: Final = 0x400
CKF_USER_PIN_COUNT_LOW: Final = 0x10000
CKF_USER_PIN_FINAL_TRY: Final = 0x20000
CKF_USER_PIN_LOCKED: Final = 0x40000
CKF_USER_PIN_TO_BE_CHANGED: Final = 0x80000

# return values the bridge tells apart
CKR_SLOT_ID_INVALID: Final = 0x3
CKR_DEVICE_ERROR: Final = 0x30
CKR_DEVICE_REMOVED: Final = 0x32
CKR_OBJECT_HANDLE_INVALID: Final = 0x82
CKR_PIN_INCORRECT: Final = 0xA0
CKR_PIN_INVALID: Final = 0xA1
CKR_PIN_LEN_RANGE: Final = 0xA2
CKR_PIN_EXPIRED: Final = 0xA3
CKR_PIN_LOCKED: Final = 0xA4
CKR_SESSION_CLOSED: Final = 0xB0
CKR_SESSION_HANDLE_INVALID: Final = 0xB3
CKR_SESSION_READ_ONLY: Final = 0xB5
CKR_TOKEN_NOT_PRESENT: Final = 0xE0
CKR_TOKEN_NOT_RECOGNIZED: Final = 0xE1
CKR_USER_ALREADY_LOGGED_IN: Final = 0x100
CKR_USER_NOT_LOGGED_IN: Final = 0x101
CKR_USER_PIN_NOT_INITIALIZED: Final = 0x102

# DER of the named-curve OID for P-256 (1.2.840.10045.3.1.7), the value of CKA_EC_PARAMS
EC_PARAMS_P256: Final = bytes.fromhex("06082a8648ce3d030107")
