"""What the readers recognise, in one table for training shards and evaluation sets alike: an image
is an image to the tagger exactly when it is one to the evaluator."""

# Member extensions (webdataset) and file suffixes (image folders) taken as images, in order of
# preference when a sample has several.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
# Parquet columns that may hold image bytes ({bytes, path} structs or raw bytes).
PARQUET_IMAGE_COLUMNS = ("image", "jpg", "img", "png", "webp")
# Fields of a webdataset `KEY.json` that hold the caption (img2dataset writes `caption`).
JSON_CAPTION_FIELDS = ("caption", "text", "txt")
# Parquet columns taken as the caption / the sample key when none is named, in order of preference:
# img2dataset and most releases write `caption` and `key`; LAION metadata has TEXT and SAMPLE_ID.
# Without a key column, the row index is the key.
PARQUET_CAPTION_COLUMNS = ("caption", "TEXT", "text")
PARQUET_KEY_COLUMNS = ("key", "SAMPLE_ID")
