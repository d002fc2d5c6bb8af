"""The chaos suite: the plan (plan.py), a private Redis and a pool of `formrelay worker`
processes (processes.py), the submissions (submissions.py), the fault schedule (faults.py),
the end-of-run accounting (checks.py) and the figures (figures.py).

Everything here is plain Python with real processes and real services; the test
(test_chaos.py) strings it together and conftest.py owns the clean-up.
"""
