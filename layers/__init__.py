"""Map layers: pure builders that turn frames into folium objects.

Nothing here calls Streamlit or computes matches. :mod:`layers.assets` finds
the browser assets the map needs offline and derives the region's land, lakes
and towns from them; :mod:`layers.basemap` builds the base map with its
offline layers, tooltips kept inside the map and the fitting of a view;
:mod:`layers.roads` the roads of a loaded road network; :mod:`layers.facilities`
and :mod:`layers.links` the data layers and the legend; :mod:`layers.routes`
the road route of a link; :mod:`layers.reach` the reach circles;
:mod:`layers.present` the presented link and the keys of the presentation
mode; :mod:`layers.html` the standalone map file. Every text that comes from
data is HTML-escaped before it reaches a layer, because Leaflet tooltips and
popups insert it as HTML, or handed to the browser as JSON and shown as text.
"""
