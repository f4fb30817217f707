"""Graphs: wire data -> a validated DAG (JSON nodes or infix text), in topological order."""
