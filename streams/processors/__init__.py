"""The stream processors: decode -> score -> store -> emit."""
