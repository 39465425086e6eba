"""The baseline of bench/pages.py: a Streamlit page with a title, a line of text and one
select box, nothing to compute, served and opened the same way as the dashboard's pages.
What it takes to settle, and to settle again after a change of its select box, is the cost
of any Streamlit page and widget change in this browser on this machine; the dashboard's
pages are timed against it."""

import streamlit as st

st.title("Baseline")
st.write("A Streamlit page with nothing to compute.")
choice = st.selectbox("Choice", ["first", "second"])
st.write(f"Chosen: {choice}")
