"""The landing zone: the declared sources (columns, types, file names) and the inventory of its files."""
