"""codecs/lic"""
