"""The CCN-2022 study as one sweep: train or load each network x seed, decode every layer,
aggregate over seeds with stated tests, draw Figure 2 and write the report."""
