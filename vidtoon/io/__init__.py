"""Reading and writing: video files in (reader) and out (writer, with the
source's audio carried along by audio), the containers and codecs vidtoon
writes (formats), the RGB to YUV conversion (yuv), still pictures (images),
and the file safety every writer uses (files: temporary name, atomic rename,
output-path checks)."""
