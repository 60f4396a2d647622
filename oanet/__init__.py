"""OANet: OCR-augmented defect detection for automatic optical inspection."""
__version__ = "0.1.0"
