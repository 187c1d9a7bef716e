"""dsslab's Hydra configs, shipped inside the package as dsslab.conf."""
