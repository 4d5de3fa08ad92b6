"""The engine of the industrial symbiosis finder.

Pure computation and I/O on GeoDataFrames: read and validate facilities and
flows (:mod:`geo.dataset`, :mod:`geo.schema`, :mod:`geo.io`), know which
resource can serve which need (:mod:`geo.taxonomy`), infer flows from sectors
(:mod:`geo.inference`), find candidate links (:mod:`geo.matching`,
:mod:`geo.distance`), score and rank them (:mod:`geo.scoring`) and write them
out (:mod:`geo.export`). :func:`geo.pipeline.match` runs the whole chain.
Never imports Streamlit or folium.
"""

__version__ = "0.1.0"
