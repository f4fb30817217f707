"""Independent checks of a result: SymPy, central finite differences, and their agreement."""
