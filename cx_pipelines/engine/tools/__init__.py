"""Tools over loaded strategies: text and Mermaid rendering, and file diffs."""
