from .search_split import SearchSplitDataset

__all__ = ['SearchSplitDataset']
