"""pipeline/eval"""
