"""The baseline of bench/pages.py: a Streamlit page with a title and nothing to compute, served
and opened the same way as the dashboard's pages. What it takes to settle is the cost of any
Streamlit page in this browser on this machine; the dashboard's pages are timed against it."""

import streamlit as st

st.title("Baseline")
st.write("A Streamlit page with nothing to compute.")
