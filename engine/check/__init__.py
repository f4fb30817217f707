"""Independent checks of a result: SymPy, central finite differences, and their agreement.

verify (the policy and ``check``), limits (``CheckLimits``), job (the plain-data job and
the cost estimates), methods (each method run and compared), agreement (reports, entry
by entry), layout (a Hessian's matrix and coordinates as the response lays them out),
finite_differences, and on the SymPy side sympy_pool (the pool),
sympy_process (one worker), sympy_job (what a worker computes) and symbolic (SymPy parts).
``POST /v1/symbolic``'s answer: symbolic_query (the entry), symbolic_job (the question as a
worker's job, within its bounds), symbolic_run (the job in the pool under its budget),
symbolic_simplify (simplification's share of it) and symbolic_layout (the reply laid out).
"""
