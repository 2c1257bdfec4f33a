"""``python -m convlab`` runs the demo (see :mod:`convlab._demo`)."""

from convlab._demo import main

if __name__ == "__main__":
    main()
