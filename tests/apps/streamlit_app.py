"""A Streamlit app for the browser tests: a button that counts its clicks."""

import streamlit as st

st.title("Hello streamlit")
if "clicks" not in st.session_state:
    st.session_state.clicks = 0
if st.button("Add one"):
    st.session_state.clicks += 1
st.write(f"clicks: {st.session_state.clicks}")
