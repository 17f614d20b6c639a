"""Method plugins: the contract, library-neutral search spaces, discovery."""
