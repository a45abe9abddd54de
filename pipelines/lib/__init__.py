"""What every room uses: the paths of a data directory (config.py), the typed settings (settings.py), memory."""
