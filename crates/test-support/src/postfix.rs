//! A throwaway Postfix instance (filled in by the popbeforesmtp work).
