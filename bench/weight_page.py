"""The page of bench/page_weight.py: bench/baseline_page.py's empty page plus one kind of
element, chosen by the query parameter `v` (none, dataframe, table, vega, metrics,
markdown), with the same small data (10 rows) in each."""

import altair as alt
import pandas as pd
import streamlit as st

kind = st.query_params.get("v", "none")
st.title("Baseline")
st.write("A Streamlit page with nothing to compute.")
choice = st.selectbox("Choice", ["first", "second"])
rows = pd.DataFrame(
    {
        "model": [f"model-{i}" for i in range(10)],
        "cost": [i * 1.5 for i in range(10)],
        "tasks": [i * 100 for i in range(10)],
    }
)
if kind == "dataframe":
    st.dataframe(rows, hide_index=True)
elif kind == "table":
    st.table(rows)
elif kind == "vega":
    st.altair_chart(alt.Chart(rows).mark_bar().encode(x="model", y="cost"))
elif kind == "metrics":
    with st.container(horizontal=True):
        for row in rows.head(7).itertuples():
            st.metric(row.model, f"{row.tasks:,}", delta=f"{row.cost}%", border=True)
elif kind == "markdown":
    st.markdown("\n".join(f"- {row.model}: {row.cost}" for row in rows.itertuples()))
st.write(f"Chosen: {choice}")
