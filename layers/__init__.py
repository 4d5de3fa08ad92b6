"""Map layers: pure builders that turn frames into folium objects.

Nothing here calls Streamlit or computes matches. :mod:`layers.assets` finds
the browser assets the map needs offline; :mod:`layers.basemap` builds the base
map with its offline land layer; :mod:`layers.facilities` and
:mod:`layers.links` the data layers; :mod:`layers.routes` the road
route of a link; :mod:`layers.html` the standalone map
file. Every text that comes from data is HTML-escaped before it reaches a
layer, because Leaflet tooltips and popups insert it as HTML.
"""
