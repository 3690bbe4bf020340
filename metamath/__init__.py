"""The Metamath substrate: read, verify, view and write ``.mm`` databases.

    >>> from metamath import Database, verify_all
    >>> db = Database.from_file("data/set-prop.mm")
    >>> verify_all(db).failed
    []
"""
from .database import Database, Frame, Statement
from .errors import MMError, ProofError, ProofFormatError
from .proof import Proof, ProofNode
from .verify import check, verify_all

__all__ = ["Database", "Frame", "Statement", "MMError", "ProofError", "ProofFormatError", "Proof", "ProofNode",
           "check", "verify_all"]
