"""What the readers recognise, in one table for training shards and evaluation sets alike: an image
is an image to the tagger exactly when it is one to the evaluator."""

# Member extensions (webdataset) and file suffixes (image folders) taken as images, in order of
# preference when a sample has several.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
# Parquet columns that may hold image bytes ({bytes, path} structs or raw bytes).
PARQUET_IMAGE_COLUMNS = ("image", "jpg", "img", "png", "webp")
# Fields of a webdataset `KEY.json` that hold the caption (img2dataset writes `caption`).
JSON_CAPTION_FIELDS = ("caption", "text", "txt")
