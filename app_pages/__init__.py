"""Pages of the map app; :mod:`app_pages.state` holds what they share."""
