"""The shop's facts, its policy versions, and the MkDocs hooks that publish them."""
