"""codecs/hevc"""
