"""Build time: resolve a model URI, inspect it, install wheels for Lambda, prune and assemble."""
