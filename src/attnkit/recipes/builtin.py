"""The built-in recipes, one registry line each (``attnkit train NAME`` lists them in this
order)."""

from . import caption, classify, lm, price_train, seq2seq, translate, vision
from .base import register

register(seq2seq.Seq2SeqRecipe("dates", "dates in 7 locales, written as ISO 8601 (generated)"))
register(
    seq2seq.Seq2SeqRecipe("times", "times of day in words and digits, written as HH:MM (generated)")
)
register(seq2seq.Seq2SeqRecipe("pairs", "your own (input, target) pairs: --data FILE", file=True))
register(lm.LMRecipe())
register(translate.TranslateRecipe())
register(price_train.PriceRecipe())
register(classify.ClassifyRecipe())
register(vision.VisionRecipe())
register(caption.CaptionRecipe())
