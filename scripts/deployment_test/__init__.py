"""The deployment test (`make test-deployment`, run by scripts/deployment.py) in its parts."""
